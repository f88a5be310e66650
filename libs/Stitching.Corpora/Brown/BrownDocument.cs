namespace Stitching.Corpora.Brown;

/// <summary>One tagged word as the corpus writes it (word/tag).</summary>
public sealed record BrownWord(string Text, BrownTag Tag);

/// <summary>One sentence (a line of the corpus file); <see cref="StartsParagraph"/> when the line is indented.</summary>
public sealed record BrownSentence(IReadOnlyList<BrownWord> Words, bool StartsParagraph);

/// <summary>One of the 500 Brown documents: file id (ca01..cr09), genre code (its second letter) and sentences.</summary>
public sealed record BrownDocument(string Id, IReadOnlyList<BrownSentence> Sentences)
{
    public char Genre => Id[1];

    /// <summary>The document as plain text with every word's character span.</summary>
    public DocumentText Render() => DocumentText.Of(this);
}

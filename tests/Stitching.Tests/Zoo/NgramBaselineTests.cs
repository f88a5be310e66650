using Stitching.Zoo.Evaluation;
using Stitching.Zoo.Training;

namespace Stitching.Tests.Zoo;

[Trait("Category", "Unit")]
public class NgramBaselineTests
{
    [Fact]
    public void Bigram_and_unigram_losses_match_counts_done_by_hand()
    {
        // train: 0 1 0 1 0 2 -> c(0)=3 c(1)=2 c(2)=1; context counts (all but the last) c(0)=3 c(1)=2;
        // bigrams (0,1)=2 (1,0)=2 (0,2)=1. Held out: one window of context 2: 0 1 2 -> targets (0->1), (1->2).
        int[] train = [0, 1, 0, 1, 0, 2];
        var heldOut = new TokenWindows([0, 1, 2], context: 2);
        var ngrams = new NgramBaselines(train, vocab: 3);
        const double k = 0.5;
        var bigram = (-Math.Log((2 + k) / (3 + 3 * k)) - Math.Log((0 + k) / (2 + 3 * k))) / 2;
        var unigram = (-Math.Log((2 + k) / (6 + 3 * k)) - Math.Log((1 + k) / (6 + 3 * k))) / 2;
        Assert.Equal(bigram, ngrams.BigramLoss(heldOut, k), 12);
        Assert.Equal(unigram, ngrams.UnigramLoss(heldOut, k), 12);
    }

    [Fact]
    public void Best_k_is_the_grid_minimum()
    {
        Assert.Equal(0.03, NgramBaselines.BestK(k => Math.Abs(Math.Log(k) - Math.Log(0.03))));
    }
}

namespace Stitching.Models.Sources;

/// <summary>Progress of one file's download: bytes on disk so far and the total when the hub told it.</summary>
public readonly record struct HubDownloadProgress(string File, long BytesDone, long? BytesTotal);

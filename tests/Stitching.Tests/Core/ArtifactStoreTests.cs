using Stitching.Core.Artifacts;
using Stitching.Core.Errors;
using Stitching.Contracts.Common.V1;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Core;

[Trait("Category", "Unit")]
public class ArtifactStoreTests
{
    [Theory]
    [InlineData("../x")]
    [InlineData("..")]
    [InlineData("/etc/passwd")]
    [InlineData("a/b")]
    [InlineData(".hidden")]
    [InlineData("")]
    [InlineData("x y")]
    public void Unsafe_ids_are_rejected_with_the_field_named(string id)
    {
        using var dir = new TempDir();
        var store = new ArtifactStore(dir.Path);
        var e = Assert.Throws<StitchingException>(() => store.Create(new ArtifactRef { Kind = "tensors", Id = id }));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Equal("ref.id", e.Field);
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(dir.Path), p => !p.EndsWith(".staging"));
    }

    [Fact]
    public void Commit_is_atomic_and_manifest_records_sha256()
    {
        using var dir = new TempDir();
        var store = new ArtifactStore(dir.Path);
        var r = new ArtifactRef { Kind = "tensors", Id = "a1" };
        using (var w = store.Create(r))
        {
            w.WriteFile("data.bin", "hello"u8);
            Assert.False(store.Exists(r));
            w.Commit();
        }
        var m = store.GetManifest(r);
        // sha256("hello"), computed independently
        Assert.Equal("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", m.Files.Single().Sha256);
        Assert.Equal("hello"u8.ToArray(), store.ReadAllBytes(r, "data.bin"));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(dir.Path, ".staging")));
    }

    [Fact]
    public void Abandoned_writer_leaves_no_artifact()
    {
        using var dir = new TempDir();
        var store = new ArtifactStore(dir.Path);
        var r = new ArtifactRef { Kind = "tensors", Id = "gone" };
        using (var w = store.Create(r)) w.WriteFile("data.bin", "x"u8);
        Assert.False(store.Exists(r));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Path.Combine(dir.Path, ".staging")));
    }

    [Fact]
    public void Corrupted_file_is_refused_with_sha256_mismatch()
    {
        using var dir = new TempDir();
        var r = new ArtifactRef { Kind = "tensors", Id = "c1" };
        using (var w = new ArtifactStore(dir.Path).Create(r)) { w.WriteFile("data.bin", "hello"u8); w.Commit(); }
        File.WriteAllBytes(Path.Combine(dir.Path, "tensors", "c1", "data.bin"), "jello"u8.ToArray());
        var e = Assert.Throws<StitchingException>(() => new ArtifactStore(dir.Path).ReadAllBytes(r, "data.bin"));
        Assert.Equal(ErrorKind.DataLoss, e.Kind);
        Assert.Contains("sha256", e.Message);
        Assert.Contains("corrupted", e.Message);
    }

    [Fact]
    public void Existing_artifact_is_never_overwritten()
    {
        using var dir = new TempDir();
        var store = new ArtifactStore(dir.Path);
        var r = new ArtifactRef { Kind = "tensors", Id = "keep" };
        using (var w = store.Create(r)) { w.WriteFile("data.bin", "first"u8); w.Commit(); }
        var e = Assert.Throws<StitchingException>(() => store.Create(r));
        Assert.Equal(ErrorKind.AlreadyExists, e.Kind);
        Assert.Equal("first"u8.ToArray(), store.ReadAllBytes(r, "data.bin"));
    }

    [Fact]
    public void Abandoned_staging_folders_are_removed_at_start_up_and_fresh_ones_kept()
    {
        using var dir = new TempDir("staging");
        var staging = Path.Combine(dir.Path, ".staging");
        var (old, fresh) = (Path.Combine(staging, "dead-writer"), Path.Combine(staging, "live-writer"));
        Directory.CreateDirectory(old);
        Directory.CreateDirectory(fresh);
        File.WriteAllText(Path.Combine(old, "part"), "x");
        File.WriteAllText(Path.Combine(fresh, "part"), "y");
        var past = DateTime.UtcNow.AddHours(-3);
        File.SetLastWriteTimeUtc(Path.Combine(old, "part"), past);
        Directory.SetLastWriteTimeUtc(old, past);
        _ = new ArtifactStore(dir.Path);
        Assert.False(Directory.Exists(old));
        Assert.True(File.Exists(Path.Combine(fresh, "part")));
    }
}

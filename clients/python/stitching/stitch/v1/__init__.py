"""Generated from the .proto files of stitching.stitch.v1 (generate.sh; do not edit)."""

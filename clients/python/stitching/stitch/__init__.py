"""Generated from the .proto files of stitching.stitch (generate.sh; do not edit)."""

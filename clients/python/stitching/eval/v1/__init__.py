"""Generated from the .proto files of stitching.eval.v1 (generate.sh; do not edit)."""

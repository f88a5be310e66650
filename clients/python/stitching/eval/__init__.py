"""Generated from the .proto files of stitching.eval (generate.sh; do not edit)."""

"""Generated from the .proto files of stitching.activations (generate.sh; do not edit)."""

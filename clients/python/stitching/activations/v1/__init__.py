"""Generated from the .proto files of stitching.activations.v1 (generate.sh; do not edit)."""

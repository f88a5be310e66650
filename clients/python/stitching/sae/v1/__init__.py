"""Generated from the .proto files of stitching.sae.v1 (generate.sh; do not edit)."""

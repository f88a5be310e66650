"""Generated from the .proto files of stitching.sae (generate.sh; do not edit)."""

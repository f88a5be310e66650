"""Generated from the .proto files of stitching.common (generate.sh; do not edit)."""

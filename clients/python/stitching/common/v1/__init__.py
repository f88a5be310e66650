"""Generated from the .proto files of stitching.common.v1 (generate.sh; do not edit)."""

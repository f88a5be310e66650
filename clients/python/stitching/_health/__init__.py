"""Generated from the .proto files of stitching._health (generate.sh; do not edit)."""

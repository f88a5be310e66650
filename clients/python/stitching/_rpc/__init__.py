"""Generated from the .proto files of stitching._rpc (generate.sh; do not edit)."""

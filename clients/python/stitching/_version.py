"""The package version, derived from the contracts by generate.sh (do not edit).

The major version is the contracts' package version (stitching.<area>.v1 -> 1); CONTRACTS_SHA256 hashes every
file under protos/, so a client built from other contracts is told apart."""
CONTRACTS = "v1"
CONTRACTS_SHA256 = "2599472453820bc2e126c9d1d0536bb4d56f82647f13f7c5c3320d6819f8093d"
__version__ = "1.0.0"

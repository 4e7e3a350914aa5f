"""Running the checker without AWS: resources on an AWS emulation and a local event source."""

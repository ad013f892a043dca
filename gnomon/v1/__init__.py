"""Generated protobuf/gRPC code for gnomon.v1 (do not edit; run `make proto`)."""

"""Image inputs: references, the rules for reading them, the public-URL policy, and uploads."""

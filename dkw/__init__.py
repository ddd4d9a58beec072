"""dkw: the clearing service for Japan's balancing market. This package holds the `dkw` command."""

"""WeCom protocol: callback crypto and the API client."""

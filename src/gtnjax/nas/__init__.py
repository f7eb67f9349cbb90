"""GTN-NAS: cell search space, proxies, ranking metrics and search."""

"""Deployment packages for Lambda: reproducible zips (same inputs, same bytes, same hash) of your own
consumer code and its requirements, installed for Lambda's runtime and architecture."""

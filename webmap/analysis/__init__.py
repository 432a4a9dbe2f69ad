"""Analyses: pure functions on GeoDataFrames (no Flask, no I/O) that the map, the API, exports and prints share."""

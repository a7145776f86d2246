"""Tests of the channels: letters, SMS files, live SMS gateways."""

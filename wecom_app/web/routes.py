"""Imports every feature module that adds routes to the API blueprint."""

"""Attaching the stream to an Aurora MySQL cluster the team already runs (`[database] cluster`)."""

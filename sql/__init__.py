"""Our SQL, shipped as package data (installed as orchestrator.sql); read it with orchestrator.resources."""

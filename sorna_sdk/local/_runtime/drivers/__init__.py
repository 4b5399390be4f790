"""Driver programs that run inside kernel processes (shipped as source, never imported)."""

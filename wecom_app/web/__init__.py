"""Web surfaces other than the callbacks: health, JSON API, pages."""

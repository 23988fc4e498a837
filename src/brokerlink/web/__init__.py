"""The server-rendered web app (Jinja2 templates, a little plain JavaScript, no build step)."""

"""The web application: server-rendered pages for marketers and sales reps."""

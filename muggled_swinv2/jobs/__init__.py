"""Jobs: read -> predict -> write, shared by the command line, the web app and the Ray pipeline."""

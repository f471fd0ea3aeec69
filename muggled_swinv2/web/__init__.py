"""The local web app, `muggled-swinv2 serve` (Gradio; the optional `[web]` extra).

service.py holds the work (limits, reading uploads, the job layer's predict and write, one model
behind one lock) and imports no Gradio; app.py lays out the page on top of it; server.py starts
it. Nothing here is imported by `import muggled_swinv2` or the other commands.
"""

INSTALL_HINT = "pip install 'muggled_swinv2[web]'"

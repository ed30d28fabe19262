"""JupyterLab as `make demo` runs it (`rul demo` puts this folder on JUPYTER_CONFIG_PATH and
points JUPYTER_CONFIG_DIR at `<data>/jupyter`, so a developer's own ~/.jupyter cannot undo it).

The token is not set here: `rul demo` hands it to the server in the JUPYTER_TOKEN environment
variable (never on the command line, where `ps` shows it to every local user).
"""

c = get_config()  # noqa: F821 - provided by traitlets when it loads this file

# Loopback only: the notebooks read the fleet's data, which is not for the network.
c.ServerApp.ip = "127.0.0.1"
c.ServerApp.open_browser = False
# A terminal is a shell for anyone holding the token; the notebooks need none.
c.ServerApp.terminals_enabled = False
# Neither is needed to run the notebooks, and both cost start time while every other UI starts
# beside JupyterLab: Panel's server extension (a slow import) and jupyter-lsp (it looks for
# language servers, and none is installed).
c.ServerApp.jpserver_extensions = {"panel.io.jupyter_server_extension": False,
                                   "jupyter_lsp": False}
# Nothing phones home: no news feed, no update check, no PyPI search in the extension manager
# (the demo runs offline, and extensions come from the project's lock file, not the UI).
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"
c.LabApp.extension_manager = "readonly"

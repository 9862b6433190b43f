# pctl for bash: add `source /path/to/pctl/shell/pctl.bash` to ~/.bashrc.
# Starts or finds the daemon and exports pointers (socket, kubeconfig), never secrets.
if command -v pctl >/dev/null 2>&1; then
  eval "$(pctl shell --shell bash)"
  eval "$(pctl completions bash)"
fi

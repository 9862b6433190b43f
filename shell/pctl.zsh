# pctl for zsh: add `source /path/to/pctl/shell/pctl.zsh` to ~/.zshrc.
# Starts or finds the daemon and exports pointers (socket, kubeconfig), never secrets.
if command -v pctl >/dev/null 2>&1; then
  eval "$(pctl shell --shell zsh)"
  if (( $+functions[compdef] )); then
    eval "$(pctl completions zsh)"
  fi
fi

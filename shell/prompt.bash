# pctl prompt segment for bash: `source /path/to/pctl/shell/prompt.bash` in
# ~/.bashrc (after pctl.bash). Shows "[admin 42m]" for the role this shell
# uses (PCTL_ROLE from `pctl env`/`exec`, or AWS_PROFILE=pctl-ROLE), and
# "[pctl locked]" when the daemon is locked. `pctl prompt` never starts a
# daemon; exit status 0 unlocked, 3 locked, 4 no daemon.
__pctl_ps1() {
  local seg rc
  seg="$(command pctl prompt 2>/dev/null)"
  rc=$?
  case "$rc" in
    0) [[ -n "$seg" && "$seg" != unlocked ]] && printf '[%s] ' "$seg" ;;
    3) printf '[pctl locked] ' ;;
  esac
  return 0
}
case "$PS1" in
  *__pctl_ps1*) ;;
  *) PS1='$(__pctl_ps1)'"$PS1" ;;
esac

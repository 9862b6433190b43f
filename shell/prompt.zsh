# pctl prompt segment for zsh: `source /path/to/pctl/shell/prompt.zsh` in
# ~/.zshrc (after pctl.zsh). Shows "[admin 42m]" for the role this shell
# uses, "[pctl locked]" when the daemon is locked (see shell/prompt.bash).
setopt prompt_subst
__pctl_ps1() {
  local seg rc
  seg="$(command pctl prompt 2>/dev/null)"
  rc=$?
  case "$rc" in
    0) [[ -n "$seg" && "$seg" != unlocked ]] && print -rn -- "[$seg] " ;;
    3) print -rn -- "[pctl locked] " ;;
  esac
  return 0
}
[[ "$PROMPT" == *__pctl_ps1* ]] || PROMPT='$(__pctl_ps1)'"$PROMPT"

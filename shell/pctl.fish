# pctl for fish: add `source /path/to/pctl/shell/pctl.fish` to ~/.config/fish/config.fish.
if command -q pctl
    pctl shell --shell fish | source
    pctl completions fish | source
end

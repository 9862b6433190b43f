# pctl prompt segment for fish: `source /path/to/pctl/shell/prompt.fish` in
# ~/.config/fish/config.fish (after pctl.fish). Prepends "[admin 42m]" or
# "[pctl locked]" to the current prompt (see shell/prompt.bash).
function __pctl_ps1
    set -l seg (command pctl prompt 2>/dev/null)
    switch $status
        case 0
            if test -n "$seg"; and test "$seg" != unlocked
                printf '[%s] ' $seg
            end
        case 3
            printf '[pctl locked] '
    end
end
if not functions -q __pctl_fish_prompt_orig
    functions -c fish_prompt __pctl_fish_prompt_orig
    function fish_prompt
        __pctl_ps1
        __pctl_fish_prompt_orig
    end
end

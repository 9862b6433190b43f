"""Nothing `op` starts outlives the daemon's time limit on it (issue 16 §2, review finding):
the real `op` may start programs of its own (the desktop app's integration helper), and a
timeout that killed only `op` left them running, holding op's output pipe. The daemon runs
`op` as the leader of a process group of its own and kills the group.

The `op` here is a script of the test's own, named by [onepassword] op_path: it starts a
long-lived child, writes the child's PID, and hangs. op_timeout is the shortest the config
takes (1s).
"""

import os

import rig
import secutil

OP = """#!/bin/sh
/bin/sleep 60 &
echo $! > {pid}.tmp
/bin/mv {pid}.tmp {pid}
wait
"""


def test_a_timed_out_op_takes_what_it_started_with_it(auth_env):
    env = auth_env
    bin_dir = os.path.join(env.root, "op-bin")
    os.mkdir(bin_dir, 0o755)
    op = os.path.join(bin_dir, "op")
    pidfile = os.path.join(env.root, "op-child.pid")
    with open(op, "w") as f:
        f.write(OP.format(pid=pidfile))
    os.chmod(op, 0o755)
    env.write_config(text=rig.config_text(op_timeout="1s",
                                          add={"onepassword": f'op_path = "{op}"'}))
    # a loaded machine may start the script so slowly that the timeout comes before its
    # child: then nothing was left to check, and the request is made again
    for _ in range(3):
        r = env.run("credential-process", "--role", "admin")
        rig.assert_pctl_error(r, "did not answer within 1s")
        if os.path.exists(pidfile):
            break
    pid = int(open(pidfile).read())
    try:
        rig.wait_until(lambda: not secutil.alive(pid), timeout=10,
                       what="the program op started to end with op")
    finally:
        if secutil.alive(pid):
            os.kill(pid, 9)

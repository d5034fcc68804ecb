import { describe, expect, it } from 'vitest';
import { ANSIBLE_PATH, ansibleEnvironment } from '../../functions/runner/ansible-environment.ts';
import { workspaceLayout } from '../../functions/runner/workspace.ts';

describe('ansibleEnvironment', () => {
  it('keeps only the allow-listed variables of the runner and points Ansible into the workspace', () => {
    // Arrange
    const base = {
      PATH: '/opt/server/bin:/usr/bin',
      HOME: '/home/operator',
      LANG: 'en_US.UTF-8',
      LC_TIME: 'de_DE.UTF-8',
      TZ: 'Europe/Berlin',
      http_proxy: 'http://proxy:3128',
      NO_PROXY: 'localhost',
      CFS_API_TOKEN: 'secret-token',
      CFS_DATA_DIR: '/var/lib/cfs',
      AWS_SECRET_ACCESS_KEY: 'secret',
      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '/v2/credentials/x',
      ECS_CONTAINER_METADATA_URI_V4: 'http://169.254.170.2/v4/x',
      RUN_DOCUMENT_KEY: 'sessions/s/run-document.json',
      ANSIBLE_CONFIG: '/etc/server-ansible.cfg',
      PYTHONPATH: '/opt/evil',
      LD_PRELOAD: '/opt/evil.so',
      SSH_AUTH_SOCK: '/tmp/agent',
    };

    // Act
    const env = ansibleEnvironment(workspaceLayout('/ws'), '/ws/layers/0/roles', base);

    // Assert
    expect(env).toEqual({
      PATH: ANSIBLE_PATH,
      HOME: '/root',
      LANG: 'en_US.UTF-8',
      LC_TIME: 'de_DE.UTF-8',
      TZ: 'Europe/Berlin',
      http_proxy: 'http://proxy:3128',
      NO_PROXY: 'localhost',
      ANSIBLE_HOME: '/ws/ansible/home',
      ANSIBLE_LOCAL_TEMP: '/ws/ansible/tmp',
      TMPDIR: '/tmp',
      ANSIBLE_ROLES_PATH: '/ws/layers/0/roles',
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_FORCE_COLOR: '0',
      ANSIBLE_RETRY_FILES_ENABLED: 'false',
      ANSIBLE_HOST_KEY_CHECKING: 'false',
      PYTHONUNBUFFERED: '1',
    });
  });

  it('gives a UTF-8 locale when the runner has none, as Ansible requires', () => {
    // Act
    const env = ansibleEnvironment(workspaceLayout('/ws'), '/ws/layers/0/roles', {});

    // Assert
    expect(env.LANG).toBe('C.UTF-8');
  });
});

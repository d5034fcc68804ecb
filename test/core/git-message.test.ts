import { describe, expect, it } from 'vitest';
import { gitMessage } from '../../functions/core/workflow/git-message.ts';

describe('gitMessage', () => {
  it('keeps the fatal lines git prints and leaves out the advice after them', () => {
    // Arrange: what `git ls-remote` prints for a missing repository.
    const stderr = [
      "fatal: '/srv/git/missing.git' does not appear to be a git repository",
      'fatal: Could not read from remote repository.',
      '',
      'Please make sure you have the correct access rights',
      'and the repository exists.',
      '',
    ].join('\n');
    // Act
    const message = gitMessage(stderr);
    // Assert
    expect(message).toBe("'/srv/git/missing.git' does not appear to be a git repository; Could not read from remote repository.");
  });

  it('removes the user and password or token of every URL git quotes', () => {
    // Act
    const message = gitMessage("remote: Invalid username or token.\nfatal: Authentication failed for 'https://oauth2:glpat-SECRET@git.example/org/r.git/'\n");
    // Assert
    expect(message).toBe("Invalid username or token.; Authentication failed for 'https://git.example/org/r.git/'");
    expect(message).not.toContain('SECRET');
  });

  it('keeps at most three lines, each cut to 200 characters, and a repeated line once', () => {
    // Arrange
    const long = `error: ${'x'.repeat(300)}`;
    const stderr = ['error: one', 'error: one', 'error: two', long, 'fatal: four'].join('\n');
    // Act
    const parts = gitMessage(stderr).split('; ');
    // Assert
    expect(parts).toEqual(['one', 'two', `${'x'.repeat(199)}…`]);
  });

  it('falls back to the last line when git printed no fatal or error line, and to nothing when it printed nothing', () => {
    // Act / Assert
    expect(gitMessage('warning: something\nthe connection was reset\n')).toBe('the connection was reset');
    expect(gitMessage('\n  \n')).toBe('');
  });
});

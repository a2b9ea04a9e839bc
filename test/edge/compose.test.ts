import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { parse } from 'yaml';
import { ensureCert, ROOT } from '../../scripts/stack/index.ts';
import {
  checkConfig,
  http2Vars,
  nativeUpstream,
  nginxVersion,
  renderTemplate,
} from '../../scripts/stack/nginx.ts';

// biome-ignore lint/suspicious/noExplicitAny: the compose file is arbitrary YAML, asserted field by field
type Doc = any;

const compose: Doc = parse(readFileSync(join(ROOT, 'messenger.yaml'), 'utf8'), { merge: true });
const services: Record<string, Doc> = compose.services;
const template = readFileSync(join(ROOT, 'nginx/messenger.conf.template'), 'utf8');

/** `${NAME:-default}` → default, as compose interpolates with an empty environment. */
const withDefaults = (v: unknown) => String(v).replace(/\$\{\w+:-([^}]*)\}/g, '$1');

describe('edge: messenger.yaml wiring', () => {
  it('when the compose file is parsed, then it has the six services and named volumes', () => {
    expect(Object.keys(services).sort()).to.deep.equal([
      'listener',
      'migrate',
      'nginx',
      'postgres',
      'rabbitmq',
      'sender',
    ]);
    expect(Object.keys(compose.volumes).sort()).to.include.members(['keys', 'pgdata', 'rabbitdata', 'tls']);
    expect(services.postgres.volumes).to.include('pgdata:/var/lib/postgresql/data');
    expect(services.rabbitmq.volumes).to.include('rabbitdata:/var/lib/rabbitmq');
  });

  it('when services are listed, then every long-running one has a healthcheck and only nginx publishes a port', () => {
    for (const [name, s] of Object.entries(services)) {
      if (name === 'migrate') continue;
      expect(s.healthcheck?.test, name).to.be.an('array').that.is.not.empty;
      if (name !== 'nginx') expect(s.ports, name).to.equal(undefined);
    }
    expect(services.nginx.ports).to.have.length(1);
    expect(withDefaults(services.nginx.ports[0])).to.equal('8443:8443');
    expect(services.rabbitmq.healthcheck.test).to.include('rabbitmq-diagnostics');
    expect(services.postgres.healthcheck.test).to.include('pg_isready');
  });

  it('when listeners are scaled, then nothing pins them: no container_name, no published port, replicas set', () => {
    const l = services.listener;
    expect(l.container_name).to.equal(undefined);
    expect(l.ports).to.equal(undefined);
    expect(l.deploy.replicas).to.be.a('number').at.least(2);
    expect(l.environment.PORT).to.equal('3000');
    expect(services.sender.container_name).to.equal(undefined);
    const upstream = readFileSync(join(ROOT, 'nginx/upstream.compose.conf'), 'utf8');
    expect(upstream).to.match(/^resolver 127\.0\.0\.11 valid=\d+s/m);
    expect(upstream).to.match(/^server listener:3000 resolve\b/m);
    expect(template).to.match(/upstream messenger_listeners \{\s*zone messenger_listeners/);
  });

  it('when the stack starts, then migrations run once before listeners and senders, which wait for healthy services', () => {
    expect(services.migrate.restart).to.equal('no');
    expect(services.migrate.command.join(' ')).to.match(
      /node scripts\/migrate\.ts && node scripts\/make-signing-key\.ts/,
    );
    expect(services.migrate.depends_on.postgres.condition).to.equal('service_healthy');
    for (const name of ['listener', 'sender']) {
      const d = services[name].depends_on;
      expect(d.migrate.condition, name).to.equal('service_completed_successfully');
      expect(d.postgres.condition, name).to.equal('service_healthy');
      expect(d.rabbitmq.condition, name).to.equal('service_healthy');
      expect(services[name].volumes, name).to.include('keys:/app/keys:ro');
    }
    expect(services.nginx.depends_on.listener.condition).to.equal('service_healthy');
    expect(services.nginx.depends_on.migrate.condition).to.equal('service_completed_successfully');
  });

  it("when compose's nginx renders the shared template, then every placeholder has a value and the image is new enough for `resolve`", () => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(services.nginx.environment)) env[k] = withDefaults(v);
    expect(env.NGINX_ENVSUBST_FILTER).to.equal('^EDGE_');
    // The image's envsubst also replaces `$EDGE_X`; the template must only use the braced form.
    expect(template.match(/\$EDGE_/g)).to.equal(null);
    const rendered = renderTemplate(template, env);
    expect(rendered).not.to.match(/\$\{/);
    expect(rendered).to.include('limit_req_zone $binary_remote_addr zone=edge_per_ip:20m rate=100r/s;');
    expect(rendered).to.include('include /etc/nginx/messenger/upstream.conf;');
    const [major, minor] = String(services.nginx.image)
      .replace(/^nginx:/, '')
      .split(/[.-]/)
      .map(Number);
    expect((major ?? 0) * 1000 + (minor ?? 0)).to.be.at.least(1027);
    const mounts: string[] = services.nginx.volumes;
    expect(mounts).to.include(
      './nginx/messenger.conf.template:/etc/nginx/templates/default.conf.template:ro',
    );
    expect(mounts).to.include('./nginx/upstream.compose.conf:/etc/nginx/messenger/upstream.conf:ro');
  });

  it("when compose's rendering is checked by this machine's nginx (its version-specific lines swapped), then nginx -t accepts it", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'messenger-compose-conf-'));
    try {
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(services.nginx.environment)) env[k] = withDefaults(v);
      await ensureCert(join(dir, 'cert.pem'), join(dir, 'key.pem'));
      await writeFile(join(dir, 'upstream.conf'), nativeUpstream([1]));
      const vars = {
        ...env,
        // What Debian's 1.22 cannot parse (`http2 on;`, `resolve`) and the container's own paths.
        ...http2Vars(await nginxVersion('nginx')),
        EDGE_UPSTREAM_INCLUDE: join(dir, 'upstream.conf'),
        EDGE_CERT: join(dir, 'cert.pem'),
        EDGE_KEY: join(dir, 'key.pem'),
        EDGE_ACCESS_LOG: join(dir, 'access.log'),
        EDGE_RUN_DIR: dir,
        EDGE_WORKERS: '1',
      };
      await mkdir(join(dir, 'nginx'));
      await mkdir(join(dir, 'logs'));
      await mkdir(join(dir, 'nginx-tmp'));
      await writeFile(join(dir, 'nginx', 'messenger.conf'), renderTemplate(template, vars));
      const main = join(dir, 'nginx', 'nginx.conf');
      await writeFile(
        main,
        renderTemplate(readFileSync(join(ROOT, 'nginx/native.conf.template'), 'utf8'), vars),
      );
      await checkConfig('nginx', dir, main);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('when a template placeholder has no value, then rendering fails instead of writing an empty directive', () => {
    const ph = (name: string) => ['$', '{', name, '}'].join('');
    expect(() => renderTemplate(`rate=${ph('EDGE_RATE')}; $remote_addr`, {})).to.throw(/EDGE_RATE/);
    expect(
      renderTemplate(`rate=${ph('EDGE_RATE')}; $remote_addr ${ph('host')}`, { EDGE_RATE: '1r/s' }),
    ).to.equal(`rate=1r/s; $remote_addr ${ph('host')}`);
  });

  it('when the image is built, then it is multi-stage on Node 24, installs production deps only and runs as non-root', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const froms = dockerfile.match(/^FROM .+$/gm) ?? [];
    expect(froms.length).to.be.at.least(2);
    for (const f of froms) expect(f).to.match(/^FROM node:24[-\w.]*( AS \w+)?$/);
    expect(dockerfile).to.match(/npm ci --omit=dev/);
    expect(dockerfile).to.match(/^USER node$/m);
  });

  it('when the containers start, then Node 24 runs the sources itself: no TypeScript loader, and every entry exists', () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
    const commands: string[][] = [
      JSON.parse(cmd ?? '[]'),
      services.listener.command,
      services.sender.command,
      services.migrate.command,
    ];
    for (const c of commands) {
      const text = c.join(' ');
      expect(text).not.to.match(/tsx|ts-node|--import|--loader|--experimental/);
      for (const file of text.match(/[\w/-]+\.ts\b/g) ?? []) {
        expect(readFileSync(join(ROOT, file), 'utf8'), file).to.be.a('string');
      }
    }
    expect(commands[0]).to.deep.equal(['node', 'listener/main.ts']);
    expect(services.sender.command).to.deep.equal(['node', 'sender/main.ts']);
    // What lets Node strip the types: tsc rejects enums, namespaces and parameter properties.
    const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.json'), 'utf8'));
    expect(tsconfig.compilerOptions).to.include({ erasableSyntaxOnly: true, verbatimModuleSyntax: true });
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.dependencies, 'npm ci --omit=dev installs no TypeScript runner').not.to.have.any.keys(
      'tsx',
      'ts-node',
      'typescript',
    );
  });
});

import nacl from 'tweetnacl';
import type { Call } from '../helpers/http.ts';
import { type Device, login, register, uniqueName } from '../helpers/people.ts';
import { type Sink, startSink } from '../helpers/sink.ts';

/**
 * The people of the fault run: sending users (the first one has a second, pull-only device
 * that gets a copy of everything it sends), and recipient users with two devices each, every
 * one of them pushed to its own local sink. `failing` makes one sink answer 503.
 */
export interface World {
  /** The devices that send (one per sending user). */
  senders: Device[];
  /** Recipient users: the target of a message is one of them, all of its devices receive. */
  recipients: { username: string; devices: Device[] }[];
  /** The sending devices' own other devices (receive copies; no push address: pull only). */
  ownOther: Map<string, Device>;
  /** Every receiving device by device id. */
  devices: Map<string, Device>;
  /** Push sink of each pushed device, by device id. */
  sinks: Map<string, Sink>;
  /** The device whose sink `failing` turns to 503. */
  flaky: Device;
  failing: boolean;
  /** Whether the sink of `deviceId` answered its `index`-th request with a 2xx. */
  accepted(deviceId: string, index: number): boolean;
  close(): Promise<void>;
}

export async function buildWorld(call: Call, opts: { senders: number; recipients: number }): Promise<World> {
  const sinks = new Map<string, Sink>();
  const devices = new Map<string, Device>();
  const answered = new Map<string, number[]>();
  const world = { failing: false } as World;
  const pushed = async (user: { username: string; password: string }, label: string) => {
    let failingSink = false;
    // The sink calls this once per request, in arrival order: statuses[i] answers requests[i].
    const statuses: number[] = [];
    const sink = await startSink({
      otherwise: () => {
        const status = failingSink && world.failing ? 503 : 200;
        statuses.push(status);
        return { status };
      },
    });
    const device = await login(call, user, { device_name: label, user_address: `${sink.url}/push/${label}` });
    answered.set(device.deviceId, statuses);
    sinks.set(device.deviceId, sink);
    devices.set(device.deviceId, device);
    return { device, makeFlaky: () => (failingSink = true) };
  };

  const senders: Device[] = [];
  const ownOther = new Map<string, Device>();
  for (let i = 0; i < opts.senders; i++) {
    const user = await register(call, uniqueName(`fs${i}`));
    senders.push(await login(call, user, { device_name: 'phone' }));
    if (i === 0) {
      const other = await login(call, user, { device_name: 'laptop (pull only)' });
      ownOther.set(senders[0]?.deviceId ?? '', other);
      devices.set(other.deviceId, other);
    }
  }
  const recipients: World['recipients'] = [];
  let flaky: { device: Device; makeFlaky: () => void } | undefined;
  for (let i = 0; i < opts.recipients; i++) {
    const user = await register(call, uniqueName(`fr${i}`));
    const a = await pushed(user, `r${i}-phone`);
    const b = await pushed(user, `r${i}-laptop`);
    flaky ??= a;
    recipients.push({ username: user.username, devices: [a.device, b.device] });
  }
  if (!flaky) throw new Error('no recipients');
  flaky.makeFlaky();
  return Object.assign(world, {
    senders,
    recipients,
    ownOther,
    devices,
    sinks,
    flaky: flaky.device,
    accepted: (deviceId: string, index: number) => {
      const s = answered.get(deviceId)?.[index];
      return s !== undefined && s < 300;
    },
    async close() {
      await Promise.all([...sinks.values()].map((s) => s.close()));
    },
  });
}

const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64');

/** nacl.box with precomputed shared keys (the X25519 step dominates; a pair's key is symmetric). */
export class Boxes {
  private readonly shared = new Map<string, Uint8Array>();

  private key(mine: Device, theirPublicKey: string): Uint8Array {
    const k = `${mine.deviceId}|${theirPublicKey}`;
    let key = this.shared.get(k);
    if (!key) {
      key = nacl.box.before(Buffer.from(theirPublicKey, 'base64'), mine.keys.secretKey);
      this.shared.set(k, key);
    }
    return key;
  }

  seal(from: Device, to: Device, text: string): { device_id: string; nonce: string; ciphertext: string } {
    const nonce = nacl.randomBytes(24);
    const box = nacl.box.after(Buffer.from(text), nonce, this.key(from, b64(to.keys.publicKey)));
    return { device_id: to.deviceId, nonce: b64(nonce), ciphertext: b64(box) };
  }

  /** The plaintext of an event addressed to `to`, or null when it does not open. */
  open(
    to: Device,
    event: { nonce: string; ciphertext: string; from: { public_key: string } },
  ): string | null {
    const opened = nacl.box.open.after(
      Buffer.from(event.ciphertext, 'base64'),
      Buffer.from(event.nonce, 'base64'),
      this.key(to, event.from.public_key),
    );
    return opened ? Buffer.from(opened).toString() : null;
  }
}

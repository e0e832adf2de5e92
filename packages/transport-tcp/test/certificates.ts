/**
 * Test certificates (test/fixtures, made with openssl; see fixtures/README.md): a CA, a node
 * certificate it signed for 127.0.0.1-127.0.0.8, ::1 and localhost (used by every node), and an
 * unrelated CA with its own node certificate, for the refusal tests. Never use them outside
 * tests: the keys are public.
 */
import { readFileSync } from 'node:fs';

const fixture = (name: string): string =>
  readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

export interface TestCertificates {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export function testCertificates(): TestCertificates {
  return { ca: fixture('ca.pem'), cert: fixture('node.pem'), key: fixture('node.key') };
}

/** A certificate from another CA: a cluster member refuses it. */
export function otherCertificates(): TestCertificates {
  return {
    ca: fixture('other-ca.pem'),
    cert: fixture('other-node.pem'),
    key: fixture('other-node.key'),
  };
}

// A dkw.v1.Clearing client written with nothing of the project's code: the proto files, @grpc/grpc-js,
// @grpc/proto-loader and Node's own crypto. It clears one auction over TLS with a bearer token and
// verifies the result's detached JWS (EdDSA, RFC 7515/8037) over result_json, the RFC 8785 bytes the
// server signed, then reads the result document from those same bytes.
//
//   node clear.js TARGET CA.pem AUCTION.json PUBLIC.pem     (the token in DKW_TOKEN)
//
// Prints one JSON line: {"verified": true, "kid": ..., "status": ..., "objective_yen": ..., "input_sha256": ...}
// and exits 0 when the signature holds; 1 with the reason otherwise.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const [target, caFile, auctionFile, publicKeyFile] = process.argv.slice(2);
const token = process.env.DKW_TOKEN;
if (!target || !caFile || !auctionFile || !publicKeyFile || !token) {
  console.error('usage: DKW_TOKEN=... node clear.js TARGET CA.pem AUCTION.json PUBLIC.pem');
  process.exit(2);
}

const protoDir = path.resolve(__dirname, '..', '..', 'proto');
const definition = protoLoader.loadSync(path.join(protoDir, 'dkw', 'v1', 'clearing.proto'), {
  keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [protoDir],
});
const { Clearing } = grpc.loadPackageDefinition(definition).dkw.v1;

const bearer = grpc.credentials.createFromMetadataGenerator((_params, callback) => {
  const metadata = new grpc.Metadata();
  metadata.add('authorization', `Bearer ${token}`);
  callback(null, metadata);
});
const credentials = grpc.credentials.combineChannelCredentials(
  grpc.credentials.createSsl(fs.readFileSync(caFile)), bearer);
const client = new Clearing(target, credentials, {
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
});

/** The reason a detached JWS does not hold over `payload`, or null when it does. */
function signatureProblem(payload, jws, publicKey) {
  const parts = jws.split('.');
  if (parts.length !== 3 || parts[1] !== '') return 'not a detached compact JWS';
  const header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
  if (header.alg !== 'EdDSA') return `unexpected alg ${header.alg}`;
  const signingInput = Buffer.from(`${parts[0]}.${payload.toString('base64url')}`, 'ascii');
  const ok = crypto.verify(null, signingInput, publicKey, Buffer.from(parts[2], 'base64url'));
  return ok ? null : 'the signature does not match result_json';
}

const deadline = new Date(Date.now() + 120 * 1000);
client.Clear({ auction_json: fs.readFileSync(auctionFile) }, { deadline }, (error, response) => {
  client.close();
  if (error) {
    console.error(`Clear failed: ${grpc.status[error.code]}: ${error.details}`);
    process.exit(1);
  }
  if (!response.result_signature) {
    console.error('the response carries no result_signature');
    process.exit(1);
  }
  const publicKey = crypto.createPublicKey(fs.readFileSync(publicKeyFile));
  const problem = signatureProblem(response.result_json, response.result_signature, publicKey);
  if (problem) {
    console.error(`signature check failed: ${problem}`);
    process.exit(1);
  }
  const result = JSON.parse(response.result_json.toString('utf8'));
  const kid = JSON.parse(Buffer.from(response.result_signature.split('.')[0], 'base64url').toString('utf8')).kid;
  console.log(JSON.stringify({
    verified: true, kid, auction_id: response.auction_id, state: response.state, status: result.status,
    objective_yen: result.objective_yen, input_sha256: result.input_sha256,
  }));
});

/**
 * A CFS v3 source (`/apis/cfs/v3/sources`): where a layer's repository is and how to log in to
 * it. The record never holds the credentials: they live in the source secret store under
 * `credentials.secret_name`, and only the username/password pair there opens the repository.
 */
export interface SourceRecord {
  name: string;
  description?: string;
  last_updated: string;
  clone_url: string;
  credentials: { authentication_method: 'password'; secret_name: string };
  /**
   * A CA bundle for the repository's TLS certificate. CFS names a Kubernetes configmap; this
   * service has none, so the PEM text is given with the request (`ca_cert.pem`) and kept here.
   */
  ca_cert?: { configmap_name: string; configmap_namespace?: string; pem?: string };
}

/** What the secret store keeps for one source: the git login. */
export interface SourceSecret {
  username: string;
  password: string;
}

/** What a git call needs to reach a source's repository: the login and, when given, the CA bundle. */
export interface GitAccess extends SourceSecret {
  caPem?: string;
}

import { createHash, randomBytes } from 'node:crypto';
import { AppError } from '../domain/errors.ts';
import { USER_ROLES, type User, type UserRole, type UsersRepository } from '../store/index.ts';
import type { AuthService, Principal } from './auth.service.ts';
import { dummyPasswordHash, hashPassword, verifyPassword } from './password.ts';

export interface UsersServiceOptions {
  sessionTtlMs: number;
  /** Failed sign-ins in a row before a user is locked out (a client address gets a few times more). */
  maxFailedLogins: number;
  lockoutMs: number;
  now?: () => number;
}

/** What a successful sign-in gives the browser: the cookie token (shown once) and the CSRF token. */
export interface SignIn {
  token: string;
  csrfToken: string;
  expiresAt: number;
  principal: Principal;
}

export interface SessionPrincipal {
  principal: Principal;
  csrfToken: string;
  /** When the session ends (ms since the epoch), unless signed out first. */
  expiresAt: number;
}

const NAME_PATTERN = /^[\p{L}\p{N}._@-]{1,64}$/u;
export const MIN_PASSWORD_LENGTH = 8;
const MAX_PASSWORD_LENGTH = 1024;
/** A client address (which may be a whole office behind NAT) may fail this many times more than one user. */
const ADDRESS_ALLOWANCE = 4;
/** Client addresses remembered for the per-address lockout; the oldest are forgotten beyond this. */
const MAX_TRACKED_ADDRESSES = 10_000;

function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function userPrincipal(user: Pick<User, 'id' | 'name' | 'role'>): Principal {
  return { keyId: `user:${user.id}`, keyName: user.name, scopes: [user.role], level: user.role, userId: user.id };
}

const invalidCredentials = (): AppError => new AppError('invalid_credentials', 401, 'the user name or password is wrong');

/**
 * Web UI sign-in: users with scrypt-hashed passwords and a role (admin or operator), and browser
 * sessions held in an HttpOnly cookie. A kiosk (or the first-start admin) signs in with an API key
 * instead; that session then has the key's scopes and ends when the key is revoked. Repeated
 * failures lock the user out for a while, and so does the client address, so that guessing keys
 * or spraying passwords over many user names is slow too.
 */
export class UsersService {
  private readonly now: () => number;
  private readonly addressFailures = new Map<string, { failures: number; lockedUntil: number }>();

  constructor(
    private readonly users: UsersRepository,
    private readonly auth: AuthService,
    private readonly options: UsersServiceOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  async createUser(name: string, role: UserRole, password: string): Promise<User> {
    if (!NAME_PATTERN.test(name)) throw new AppError('invalid_user_name', 400, 'a user name is 1–64 letters, digits or . _ @ -');
    if (!USER_ROLES.includes(role)) throw new AppError('invalid_role', 400, `a role is one of ${USER_ROLES.join(', ')}`);
    this.checkPassword(password);
    return this.users.create({ name, role, passwordHash: await hashPassword(password) });
  }

  listUsers(): Promise<User[]> {
    return this.users.list();
  }

  async deleteUser(id: string): Promise<void> {
    if (!(await this.users.delete(id))) throw new AppError('user_not_found', 404, `no user ${id}`);
  }

  async setPassword(id: string, password: string): Promise<void> {
    this.checkPassword(password);
    if (!(await this.users.setPassword(id, await hashPassword(password)))) throw new AppError('user_not_found', 404, `no user ${id}`);
  }

  async signInWithPassword(name: string, password: string, clientAddress: string): Promise<SignIn> {
    this.checkAddress(clientAddress);
    const user = await this.users.findByName(name);
    if (!user) {
      await verifyPassword(password, await dummyPasswordHash());
      this.failAddress(clientAddress);
      throw invalidCredentials();
    }
    if (user.lockedUntil !== null && user.lockedUntil > this.now()) {
      throw new AppError('locked_out', 429, `too many failed sign-ins: ${name} is locked until ${new Date(user.lockedUntil).toISOString()}`);
    }
    if (!(await verifyPassword(password, user.passwordHash))) {
      await this.users.recordFailure(user.id, this.options.maxFailedLogins, this.now() + this.options.lockoutMs);
      this.failAddress(clientAddress);
      throw invalidCredentials();
    }
    await this.users.recordSuccess(user.id, this.now());
    this.addressFailures.delete(clientAddress);
    return this.openSession(userPrincipal(user), { userId: user.id, apiKeyId: null });
  }

  /** Signs in with an API key (a kiosk's device key, or the first-start admin key). */
  async signInWithKey(key: string, clientAddress: string): Promise<SignIn> {
    this.checkAddress(clientAddress);
    const principal = await this.auth.authenticate(key);
    if (!principal) {
      this.failAddress(clientAddress);
      throw new AppError('invalid_credentials', 401, 'the API key is unknown or revoked');
    }
    this.addressFailures.delete(clientAddress);
    return this.openSession(principal, { userId: null, apiKeyId: principal.keyId });
  }

  /** The principal behind a session cookie, or undefined when the session is unknown, expired, or its user or key is gone. */
  async principalForSession(token: string): Promise<SessionPrincipal | undefined> {
    if (token.length === 0 || token.length > 200) return undefined;
    const hash = tokenHash(token);
    const session = await this.users.findSession(hash);
    if (!session) return undefined;
    if (session.expiresAt <= this.now()) {
      await this.users.deleteSession(hash);
      return undefined;
    }
    if (session.userId !== null) {
      const user = await this.users.get(session.userId);
      return user ? { principal: userPrincipal(user), csrfToken: session.csrfToken, expiresAt: session.expiresAt } : undefined;
    }
    const principal = session.apiKeyId !== null ? await this.auth.principalForKeyId(session.apiKeyId) : undefined;
    return principal ? { principal, csrfToken: session.csrfToken, expiresAt: session.expiresAt } : undefined;
  }

  async signOut(token: string): Promise<void> {
    await this.users.deleteSession(tokenHash(token));
  }

  /** Drops expired sessions (called from time to time; expired ones are refused anyway). */
  pruneSessions(): Promise<number> {
    return this.users.deleteExpiredSessions(this.now());
  }

  private async openSession(principal: Principal, owner: { userId: string | null; apiKeyId: string | null }): Promise<SignIn> {
    const token = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(24).toString('base64url');
    const createdAt = this.now();
    const expiresAt = createdAt + this.options.sessionTtlMs;
    await this.users.createSession({ tokenHash: tokenHash(token), ...owner, csrfToken, createdAt, expiresAt });
    return { token, csrfToken, expiresAt, principal };
  }

  private checkPassword(password: string): void {
    if (password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH) {
      throw new AppError('invalid_password', 400, `a password has ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`);
    }
  }

  private checkAddress(address: string): void {
    const entry = this.addressFailures.get(address);
    if (entry && entry.lockedUntil > this.now()) {
      throw new AppError('locked_out', 429, 'too many failed sign-ins from this address: try again later');
    }
  }

  private failAddress(address: string): void {
    const entry = this.addressFailures.get(address) ?? { failures: 0, lockedUntil: 0 };
    entry.failures++;
    if (entry.failures >= this.options.maxFailedLogins * ADDRESS_ALLOWANCE) {
      entry.failures = 0;
      entry.lockedUntil = this.now() + this.options.lockoutMs;
    }
    this.addressFailures.delete(address);
    this.addressFailures.set(address, entry);
    if (this.addressFailures.size > MAX_TRACKED_ADDRESSES) {
      const oldest = this.addressFailures.keys().next().value;
      if (oldest !== undefined) this.addressFailures.delete(oldest);
    }
  }
}

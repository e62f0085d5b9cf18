/** A peer device: an account name (any stable string: a service id, a phone-number account id) and a device id. */
export class ProtocolAddress {
  constructor(
    readonly name: string,
    readonly deviceId: number,
  ) {}

  /** `name.deviceId`, the key stores use. */
  toString(): string {
    return `${this.name}.${this.deviceId}`;
  }
}
